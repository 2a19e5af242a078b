-- Tenant: phase Pending, Ready, Suspended (spec.suspended), Failed, Terminating.
if status.phase == "Suspended" then return verdict("Suspended", describe(ready, "spec.suspended is true")) end
if ready.status == "True" then return verdict("Healthy", ready.message) end
-- DeletionBlocked is shown only while deleting (handled above); InvalidRegion, InvalidName, InvalidQuantity need a spec change.
return judgeReason(ready, nil, nil)
