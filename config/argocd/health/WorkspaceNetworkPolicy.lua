-- WorkspaceNetworkPolicy: no phase. Ready, and Degraded (the one condition whose True is the abnormal state:
-- rules outside the tenant's bounds were dropped).
if isTrue("Degraded") then return verdict("Degraded", describe(condition("Degraded"))) end
if ready.status == "True" then return verdict("Healthy", ready.message) end
-- InvalidName, WorkspaceNotFound, TenantNotFound, InvalidSelector, PolicyConflict, RulesDropped: fail closed, nothing rendered.
return judgeReason(ready, nil, nil)
