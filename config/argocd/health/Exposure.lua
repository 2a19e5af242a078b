-- Exposure: phase Draft (spec.publish false), PendingApproval, Published, Rejected.
if ready.reason == "Draft" then return verdict("Suspended", describe(ready)) end
if ready.status == "True" then return verdict("Healthy", ready.message) end
if status.phase == "Rejected" then return verdict("Degraded", describe(ready)) end
-- An approval is a person's act: held, not failed. A refusal (IngressConflict, HostNotDelegated, BackendNotFound, ...) is Degraded.
return judgeReason(ready, nil, { AwaitingApproval = true, TenantSuspended = true })
