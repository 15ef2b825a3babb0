/** MEASUREMENT AID, NOT THE PRODUCT: where the prototypes of bench/proxy/prototypes/ forward to. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/** Parses `HOST:PORT`. @throws Error naming the bad value */
export function parseUpstream(text: string): Upstream {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--upstream must be HOST:PORT, got '${text}'`);
  }
  return { host: text.slice(0, colon), port };
}
