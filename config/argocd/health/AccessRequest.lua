-- AccessRequest: phase Pending (awaiting approval), Active (granted until status.expiresAt), Expired, Revoked, Rejected.
local phase = status.phase
if phase == "Active" and ready.status == "True" then return verdict("Healthy", ready.message) end
-- A grant that ran out or was ended is the normal end of its life, not a fault.
if phase == "Expired" or phase == "Revoked" then return verdict("Healthy", describe(ready)) end
-- Refused by its policy, its tenant or an approver: it will never be granted.
if phase == "Rejected" then return verdict("Degraded", describe(ready)) end
-- An approval is a person's act: held until given.
if phase == "Pending" then return judgeReason(ready, nil, { AwaitingApproval = true }) end
return judgeReason(ready, nil, nil)
