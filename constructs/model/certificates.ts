// The certificate words a stack file uses: which certificate of a service, and with which key.

/** Key algorithm of a certificate. The seed's default is ECDSA P-256; RSA 2048 on request. */
export type KeyType = 'ecdsa-p256' | 'rsa-2048';

/** Every key type, in the order documentation lists them. */
export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048'];

/** Which certificate of a service a binding describes; it also picks the file names. */
export type CertKind = 'server' | 'client' | 'public';
