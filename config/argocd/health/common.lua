-- Argo CD health of a controlplane.io object: this shared part, then the kind's own (config/argocd/health/<Kind>.lua);
-- `make manifests` joins them into one argocd-cm key per kind (samples/gitops/argocd-cm-health.yaml).
-- Argo CD runs it with gopher-lua (Lua 5.1) and opens only base, table, package and a safe os: no string or
-- math library, so no string methods here; the tests run it under lua5.1 with exactly that.
-- Verdicts: Healthy (what the spec asks is in place), Progressing (on its way, or waiting for something that
-- comes without anyone acting), Suspended (held on purpose: a spec switch, a suspended tenant, or an approval a
-- person must give), Degraded (failed, refused, or stuck until someone changes something). Missing is Argo CD's
-- own verdict for an object that does not exist; a script never sees one.
local hs = {}
local meta = obj.metadata or {}
local status = obj.status
local generation = meta.generation

local function verdict(health, message)
  hs.status = health
  hs.message = message or ""
  return hs
end

local function condition(kind)
  if status == nil or status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

-- "Reason: message", what `kubectl describe` shows of a condition.
local function describe(c, fallback)
  if c == nil then return fallback or "" end
  if c.message == nil or c.message == "" then return c.reason or fallback or "" end
  if c.reason == nil or c.reason == "" then return c.message end
  return c.reason .. ": " .. c.message
end

local function isTrue(kind)
  local c = condition(kind)
  return c ~= nil and c.status == "True"
end

-- A Ready=False condition judged by its reason: waits end on their own, holds wait for a person or a spec switch,
-- anything else (a refusal, a failure, a reason this script does not know) is Degraded so that it is looked at.
local waitsEverywhere = { DatabaseUnavailable = true }
local function judgeReason(c, waits, holds)
  local reason = c.reason or ""
  if waitsEverywhere[reason] or (waits ~= nil and waits[reason]) then return verdict("Progressing", describe(c)) end
  if holds ~= nil and holds[reason] then return verdict("Suspended", describe(c)) end
  return verdict("Degraded", describe(c))
end

-- What every kind shares: deletion, nothing written yet, a status of an older generation, kstatus' Stalled.
local function common()
  local ready = condition("Ready")
  if meta.deletionTimestamp ~= nil then
    return verdict("Progressing", "Being deleted" .. (ready ~= nil and ready.status ~= "True" and (": " .. describe(ready)) or ""))
  end
  if status == nil or ready == nil then return verdict("Progressing", "Waiting for the operator") end
  if generation ~= nil then
    if status.observedGeneration ~= nil and status.observedGeneration < generation then
      return verdict("Progressing", "Waiting for the operator to observe generation " .. generation)
    end
    if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
      return verdict("Progressing", "Waiting for the operator to observe generation " .. generation)
    end
  end
  local stalled = condition("Stalled")
  if stalled ~= nil and stalled.status == "True" and (generation == nil or stalled.observedGeneration == nil or stalled.observedGeneration >= generation) then
    return verdict("Degraded", describe(stalled))
  end
  if ready.reason == "ReconcileError" then return verdict("Degraded", describe(ready)) end
  return nil
end

local early = common()
if early ~= nil then return early end
local ready = condition("Ready")
