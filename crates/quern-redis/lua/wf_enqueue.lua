-- job_enqueue of jobs of which some carry a workflow id: the enqueue script, plus each
-- stored job joining its workflow's member set in the same step. Own arguments: one
-- workflow id per job ('' = none). Returns the enqueue script's reply unchanged.

local wfs = {}
for x = 5, 4 + M do wfs[#wfs + 1] = ARGV[x] end
local _, r = run_enqueue(EBASE, wfs)
return r
