-- Argo CD health of every controlplane.io kind (resource.customizations.health.controlplane.io_*).
-- The operator's statuses follow one convention: a Ready condition and observedGeneration (kstatus),
-- a phase on Tenant and Workspace. Tested with lua5.4 against statuses recorded from the operator.
local hs = {}
local status = obj.status
local generation = obj.metadata and obj.metadata.generation or nil

if obj.metadata and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then ready = c end
  end
end

if status.phase == "Suspended" or (ready ~= nil and ready.reason == "TenantSuspended") then
  hs.status = "Suspended"
  hs.message = ready ~= nil and ready.message or "Suspended"
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "No Ready condition yet"
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

-- Not ready: still on its way (a dependency briefly down, deletion) or stuck until someone acts.
-- Ready says which condition holds it (reason NotReady): judge by those conditions' reasons.
local transient = { DatabaseUnavailable = true, Deleting = true, Terminating = true, TenantTerminating = true,
                    Pending = true, Creating = true, Provisioning = true, Reconciling = true }
-- Degraded (WorkspaceNetworkPolicy) is the one abnormal-true condition: False is the healthy state.
local holding = {}
for _, c in ipairs(status.conditions) do
  if c.type ~= "Ready" and c.type ~= "Degraded" and c.status ~= "True" then table.insert(holding, c) end
end
if #holding == 0 then holding = { ready } end
local stuck = false
for _, c in ipairs(holding) do
  if c.status ~= "Unknown" and not transient[c.reason or ""] then stuck = true end
end
if stuck then hs.status = "Degraded" else hs.status = "Progressing" end
hs.message = (holding[1].reason or "NotReady") .. ": " .. (ready.message or "")
return hs
