-- NotificationChannel: phase Pending (not checked yet, or a named Secret missing), Active (delivering), AutoDisabled, Invalid.
local phase = status.phase
if phase == "Active" and ready.status == "True" then return verdict("Healthy", ready.message) end
-- Disabled by its failures or refused: only a spec change moves it (Stalled).
if phase == "AutoDisabled" or phase == "Invalid" then return verdict("Degraded", describe(ready)) end
-- A missing Secret is waited for; a database outage is retried.
return judgeReason(ready, { SecretMissing = true }, nil)
