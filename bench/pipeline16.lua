-- SPDX-License-Identifier: Apache-2.0
-- wrk script: every request() is 16 pipelined GET / requests; wrk counts each response.
init = function(args)
   local r = {}
   for i = 1, 16 do
      r[i] = wrk.format("GET", "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
