/** Wire protocol version carried in `hello`; bump on any incompatible change. */
export const PROTOCOL_VERSION = 6;
