-- Approval: no phase. Ready=True when it counts (reason Counts or Rejects); False when it does not
-- (TargetNotFound, StaleGeneration, SelfApproval, NotAnApprover, ...): a decision that does not count is Degraded.
if ready.status == "True" then return verdict("Healthy", ready.message) end
return judgeReason(ready, nil, nil)
