-- Rollout: phase Pending, Progressing (a ring rolling out or soaking), Paused, Succeeded, RolledBack, Failed.
-- Its Paused condition is False (NotPaused) in the normal course: only Paused=True holds it, and its reason says why.
local phase = status.phase
if phase == "Succeeded" and ready.status == "True" then return verdict("Healthy", ready.message) end
if phase == "RolledBack" or phase == "Failed" or ready.reason == "RollbackIncomplete" then return verdict("Degraded", describe(ready)) end
if phase == "Paused" then
  local paused = condition("Paused")
  if paused == nil or paused.status ~= "True" then paused = ready end
  -- spec.paused, a suspended tenant and an approval are holds; MetricsUnavailable (asked again every 10 s),
  -- RingEmpty and DeploymentNotFound wait for something that can arrive; Rejected and RequesterForbidden need a person to act.
  return judgeReason(paused, { MetricsUnavailable = true, RingEmpty = true, DeploymentNotFound = true, WaitingForRollout = true },
    { Paused = true, TenantSuspended = true, AwaitingApproval = true })
end
if phase == "Pending" or phase == "Progressing" then
  local progressing = condition("Progressing")
  if progressing ~= nil and progressing.message ~= nil then return verdict("Progressing", progressing.message) end
  return verdict("Progressing", describe(ready))
end
return judgeReason(ready, nil, nil)
