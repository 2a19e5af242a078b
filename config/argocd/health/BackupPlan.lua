-- BackupPlan: no phase. Ready (Scheduled, Suspended, or a refusal), LastBackupSucceeded, BackupOverdue.
if ready.status == "True" and ready.reason == "Suspended" then return verdict("Suspended", describe(ready)) end
if ready.status == "True" then
  -- As Argo CD judges a CronJob: its last run failing, or no success for twice the interval, is Degraded.
  if isTrue("BackupOverdue") then return verdict("Degraded", describe(condition("BackupOverdue"))) end
  local last = condition("LastBackupSucceeded")
  if last ~= nil and last.status == "False" then return verdict("Degraded", describe(last)) end
  return verdict("Healthy", ready.message)
end
-- WorkspaceNotReady: the workspace's database is not there yet; InvalidSchedule, CredentialsNotFound, ... need a change.
return judgeReason(ready, { WorkspaceNotReady = true }, nil)
