-- Argo CD health of a twin.blis.dev SimulationScenario (Lua 5.1, as Argo CD runs it).
-- Install: argocd-cm key resource.customizations.health.twin.blis.dev_SimulationScenario (docs/gitops.md).
--   Progressing  no prediction yet for the current generation, or a simulation is running
--   Degraded     a gate or class SLO fails (SLOMet=False), or the controller is stuck (Stalled=True:
--                invalid spec, simulation limit, enforced gate failure)
--   Healthy      Ready=True and every gate met
local hs = {}

local function condition(conditions, type_)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the controller to simulate the current spec"
  return hs
end

-- The first condition in this order that has the given status decides, with its message.
local rules = {
  { "Stalled", "True", "Degraded" },
  { "Reconciling", "True", "Progressing" },
  { "SLOMet", "False", "Degraded" },
  { "Ready", "True", "Healthy" },
}
for _, r in ipairs(rules) do
  local c = condition(status.conditions, r[1])
  if c ~= nil and c.status == r[2] then
    hs.status = r[3]
    hs.message = c.message
    return hs
  end
end

local ready = condition(status.conditions, "Ready")
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "waiting for the prediction"
end
return hs
