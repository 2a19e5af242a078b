-- BreakGlass: phase Active (an emergency grant until status.expiresAt), Expired, Ended, Refused; ReviewOverdue when no review came in time.
local phase = status.phase
-- A grant nobody reviewed by its deadline: someone must look (an Approval of the BreakGlass clears it).
if isTrue("ReviewOverdue") then return verdict("Degraded", describe(condition("ReviewOverdue"))) end
if phase == "Active" and ready.status == "True" then return verdict("Healthy", ready.message) end
-- Ended or refused: final and Stalled, like an ended AccessRequest; emergency access again needs a new BreakGlass.
if phase == "Expired" or phase == "Ended" or phase == "Refused" then return verdict("Degraded", describe(ready)) end
return judgeReason(ready, nil, nil)
