-- Application: phase AwaitingApproval (a scope version waits for CAB), Active (spec.allowedScope in effect),
-- Rejected (CAB rejected the requested scope), Failed (the requested scope lies outside the tenant's scopes).
if ready.status == "True" then return verdict("Healthy", ready.message) end
-- The system of record briefly away: nothing took effect, the pass is retried, whatever the phase.
if ready.reason == "DatabaseUnavailable" then return verdict("Progressing", describe(ready)) end
if status.phase == "Rejected" or status.phase == "Failed" then return verdict("Degraded", describe(ready)) end
-- CAB approval is a person's act: held until given (the approved scope, if any, stays in effect meanwhile).
if status.phase == "AwaitingApproval" then return verdict("Suspended", describe(ready)) end
return judgeReason(ready, nil, { AwaitingApproval = true })
