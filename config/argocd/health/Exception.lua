-- Exception: phase Pending (awaiting a SecurityReviewer), Active (approved, unexpired: it counts), Expired, Rejected.
local phase = status.phase
if phase == "Active" and ready.status == "True" then return verdict("Healthy", ready.message) end
-- Expired or rejected: it covers nothing any more; a new review is needed.
if phase == "Expired" or phase == "Rejected" then return verdict("Degraded", describe(ready)) end
-- A SecurityReviewer's approval is a person's act: held until given.
if phase == "Pending" then return judgeReason(ready, nil, { AwaitingApproval = true }) end
return judgeReason(ready, nil, nil)
