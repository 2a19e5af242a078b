-- Workspace: phase Creating, Ready, Failed, Terminating. Ready=False with reason NotReady names the conditions
-- that hold it (NamespaceReady, NetworkReady, AccessReady, QuotaReady, DatabaseReady, ProviderKeysReady).
if ready.status == "True" then return verdict("Healthy", ready.message) end
if ready.reason == "TenantSuspended" then return verdict("Suspended", describe(ready)) end
if ready.reason ~= "NotReady" then return judgeReason(ready, nil, nil) end
local holding = {}
for _, c in ipairs(status.conditions) do
  if c.type ~= "Ready" and c.status ~= "True" then table.insert(holding, c) end
end
if #holding == 0 then return verdict("Progressing", describe(ready)) end
local stuck = false
for _, c in ipairs(holding) do
  if c.status ~= "Unknown" and not waitsEverywhere[c.reason or ""] then stuck = true end
end
-- The first holding condition's reason, then Ready's message (every holding condition, "Type: message; ...").
local message = (holding[1].reason or "NotReady") .. ": " .. (ready.message or "")
if stuck then return verdict("Degraded", message) end
return verdict("Progressing", message)
