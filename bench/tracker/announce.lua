-- wrk script: announces from random peers to 64 swarms, the same stream for every tracker.
-- The swarms' info hashes come percent-encoded, one a line, from the file named by the
-- ANNOUNCE_HASHES environment variable (bench/tracker/run.sh writes it). Each request picks a
-- swarm, one of 65,536 peer ids (so the swarms grow to thousands of peers and stay there), a
-- random port, and seeder or leecher (one in four seeds); compact, numwant 50 by default.

local hashes = {}
local ids = {}
local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

function init(args)
  local file = os.getenv("ANNOUNCE_HASHES")
  for line in io.lines(file) do
    hashes[#hashes + 1] = line
  end
  -- Different threads, different streams.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  for i = 1, 65536 do
    local t = {}
    for j = 1, 12 do
      local k = math.random(#alphabet)
      t[j] = alphabet:sub(k, k)
    end
    ids[i] = "-WR0001-" .. table.concat(t)
  end
end

function request()
  local left = "1000"
  if math.random(4) == 1 then
    left = "0"
  end
  return wrk.format("GET", "/announce?info_hash=" .. hashes[math.random(#hashes)]
    .. "&peer_id=" .. ids[math.random(#ids)]
    .. "&port=" .. math.random(1024, 65535)
    .. "&uploaded=0&downloaded=0&left=" .. left .. "&compact=1&key=1a2b3c4d")
end
