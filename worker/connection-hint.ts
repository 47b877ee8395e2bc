/**
 * What a volunteer should check when the coordinator cannot be reached, from the socket
 * error's code: said once, at the first failure, not at every retry.
 */
export function unreachableHint(url: string, error: Error): string | undefined {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || !['ws:', 'wss:'].includes(parsed.protocol))
    return `${url} is not a coordinator address: it looks like ws://HOST:PORT`;
  const host = parsed.hostname;
  const port = parsed.port || (parsed.protocol === 'wss:' ? '443' : '80');
  const code = (error as Error & { code?: string }).code ?? /\b(E[A-Z]+)\b/.exec(error.message)?.[1];
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens on ${host} port ${port}: is the coordinator running, and is ${port} its port?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the name ${host} does not resolve: check the spelling of the address, or use its IP`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${host} port ${port} does not answer: is the machine on, and does a firewall let port ${port} through?`;
    case 'ECONNRESET':
      return `${host} port ${port} closed the connection: is it an Arbor coordinator, and ws:// or wss:// as it serves?`;
    default:
      return undefined;
  }
}
