/**
 * The one server-side script every redisquota decision runs: it reads the counter, decides,
 * charges and remembers the answer for the deduplication id in one atomic step, so any
 * number of policy servers sharing one Redis never grant more than the limit between
 * them. Time is Redis's own (`TIME`), so servers whose clocks disagree still share windows.
 *
 * KEYS[1]  the counter, a hash (fields by algorithm, below)
 * KEYS[2]  optional: the deduplication entry, `granted:validMs:available`
 * ARGV     algorithm (F, R or T), maxAmount, windowMs, bucketMs (R) or burst (T), amount,
 *          bestEffort (1 or 0), deduplication window in ms
 * returns  {granted, validMs, available, repeated (1 when answered from KEYS[2])}
 *
 * FIXED_WINDOW (F): fields `w` (window number, now / windowMs) and `c` (granted in it); a
 * grant is valid until the window ends.
 * ROLLING_WINDOW (R): one field per bucket number (now / bucketMs) with what it granted,
 * `t` (their total) and `o` (the oldest bucket that may hold anything). Buckets that left
 * the window are subtracted and deleted as time passes, oldest first, so a call costs one
 * step per bucket expired since the last one; the total over any windowMs / bucketMs
 * consecutive buckets never exceeds maxAmount. A grant is valid until its bucket leaves the
 * window; a denial until enough buckets have left for the ask to fit.
 * TOKEN_BUCKET (T): generic cell rate: field `tat`, the time at which the bucket is full
 * again; each unit adds windowMs / maxAmount to it; an ask fits while tat stays within
 * burst units of now. A grant is valid for the time its units take to refill; a denial
 * until the ask would fit.
 */
export const QUOTA_SCRIPT = `
local algorithm = ARGV[1]
local maxAmount = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local extra = tonumber(ARGV[4])
local amount = tonumber(ARGV[5])
local bestEffort = ARGV[6] == '1'
local dedupMs = tonumber(ARGV[7])

if KEYS[2] then
  local earlier = redis.call('GET', KEYS[2])
  if earlier then
    local g, v, a = string.match(earlier, '^(%d+):(%d+):(-?%d+)$')
    if g then return {tonumber(g), tonumber(v), tonumber(a), 1} end
  end
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function grantable(available)
  if amount <= available then return amount end
  if bestEffort and available > 0 then return available end
  return 0
end

local granted, validMs, available
if algorithm == 'F' then
  local window = math.floor(now / windowMs)
  local state = redis.call('HMGET', KEYS[1], 'w', 'c')
  local used = 0
  if tonumber(state[1]) == window then used = tonumber(state[2]) or 0 end
  available = maxAmount - used
  granted = grantable(available)
  validMs = (window + 1) * windowMs - now
  if granted > 0 then
    redis.call('HSET', KEYS[1], 'w', window, 'c', used + granted)
    redis.call('PEXPIRE', KEYS[1], validMs)
  elseif amount > maxAmount and not bestEffort then
    validMs = windowMs
  end
elseif algorithm == 'R' then
  local bucketMs = extra
  local n = windowMs / bucketMs
  local b = math.floor(now / bucketMs)
  local cutoff = b - n
  local state = redis.call('HMGET', KEYS[1], 't', 'o')
  local total = tonumber(state[1]) or 0
  local oldest = tonumber(state[2])
  if oldest and cutoff >= oldest + n - 1 then
    redis.call('DEL', KEYS[1])
    total = 0
    oldest = nil
  elseif oldest and cutoff >= oldest then
    for i = oldest, cutoff do
      local v = redis.call('HGET', KEYS[1], i)
      if v then
        total = total - tonumber(v)
        redis.call('HDEL', KEYS[1], i)
      end
    end
    oldest = cutoff + 1
    redis.call('HSET', KEYS[1], 't', total, 'o', oldest)
  end
  available = maxAmount - total
  granted = grantable(available)
  if granted > 0 then
    redis.call('HINCRBY', KEYS[1], b, granted)
    redis.call('HSET', KEYS[1], 't', total + granted, 'o', oldest or b)
    redis.call('PEXPIRE', KEYS[1], windowMs + bucketMs)
    validMs = (b + n) * bucketMs - now
  else
    validMs = windowMs
    local need = amount
    if bestEffort then need = 1 end
    if need <= maxAmount then
      need = need - available
      local freed = 0
      for i = (oldest or (cutoff + 1)), b do
        local v = tonumber(redis.call('HGET', KEYS[1], i))
        if v then
          freed = freed + v
          if freed >= need then
            validMs = (i + n) * bucketMs - now
            break
          end
        end
      end
    end
  end
else
  local burst = extra
  if maxAmount == 0 then
    available = 0
    granted = 0
    validMs = windowMs
  else
    local interval = windowMs / maxAmount
    local tat = tonumber(redis.call('HGET', KEYS[1], 'tat')) or now
    if tat < now then tat = now end
    available = math.floor((now + burst * interval - tat) / interval + 0.000001)
    granted = grantable(available)
    if granted > 0 then
      tat = tat + granted * interval
      redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat))
      redis.call('PEXPIRE', KEYS[1], math.ceil(tat - now) + 1)
      validMs = math.ceil(granted * interval)
    else
      local need = amount
      if bestEffort then need = 1 end
      if need > burst then
        validMs = windowMs
      else
        validMs = math.max(1, math.ceil(tat + (need - burst) * interval - now))
      end
    end
  end
end

if KEYS[2] then
  redis.call('SET', KEYS[2], string.format('%d:%d:%d', granted, validMs, available), 'PX', dedupMs)
end
return {granted, validMs, available, 0}
`;

/** The script's algorithm argument. */
export const ALGORITHM_CODE = { FIXED_WINDOW: 'F', ROLLING_WINDOW: 'R', TOKEN_BUCKET: 'T' } as const;

/** The script's answer. */
export interface ScriptDecision {
  readonly granted: number;
  readonly validDurationMs: number;
  /** What was left before this call. */
  readonly available: number;
  /** True when the answer is an earlier call's, found by its deduplication id. */
  readonly repeated: boolean;
}

/**
 * Reads the script's reply.
 * @throws Error when the reply is not four integers (a different script under our name)
 */
export function readDecision(reply: unknown): ScriptDecision {
  if (!Array.isArray(reply) || reply.length !== 4 || !reply.every((x) => typeof x === 'number')) {
    throw new Error(`unexpected reply from the quota script: ${JSON.stringify(reply)}`);
  }
  const [granted, validDurationMs, available, repeated] = reply as [number, number, number, number];
  return { granted, validDurationMs, available, repeated: repeated === 1 };
}
