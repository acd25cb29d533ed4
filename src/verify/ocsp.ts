// Reading a stapled OCSP response (RFC 6960 §4.2.1) as verify sees it in a handshake: a small DER
// walk to the first SingleResponse, and the checks a TLS client makes: the response is signed by
// the certificate's issuer or by a responder the issuer delegated (id-kp-OCSPSigning), it is about
// this serial, and it is not past its nextUpdate. Node has no OCSP parser; nothing here trusts
// the response before its signature checked out.
import { verify as verifySignature, X509Certificate } from 'node:crypto';

/** What verify reports for a service's OCSP. */
export type OcspStatus = 'good' | 'revoked' | 'unknown' | 'not stapled' | 'invalid';

/** A stapled response, judged. */
export interface OcspVerdict {
  readonly status: OcspStatus;
  /** In a few words: the times, the reason, what is wrong. */
  readonly detail: string;
}

interface Tlv {
  readonly tag: number;
  /** Start of the whole element and of its contents, end of its contents, in the buffer. */
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

/** One DER element at `at` (definite lengths only, as DER requires). */
function tlv(buf: Buffer, at: number): Tlv {
  if (at + 2 > buf.length) throw new Error('truncated');
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || body + n > buf.length) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i]!;
    body += n;
  }
  if (body + len > buf.length) throw new Error('truncated');
  return { tag, start: at, body, end: body + len };
}

/** The elements inside a constructed element. */
function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const c = tlv(buf, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** GeneralizedTime contents (`YYYYMMDDHHMMSSZ`) as a Date. */
function generalizedTime(buf: Buffer, t: Tlv): Date {
  const s = buf.toString('latin1', t.body, t.end);
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new Error(`unreadable time ${s}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

const ID_PKIX_OCSP_BASIC = Buffer.from('06092b0601050507300101', 'hex');
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const REASONS = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', '', 'removeFromCRL', 'privilegeWithdrawn', 'aACompromise'];

/**
 * Judges a stapled response for the certificate with serial `serial` (lower-case hex) issued by
 * `issuer`, at `now`. `undefined` (the server sent none) is `not stapled`.
 */
export function judgeStapled(der: Buffer | undefined, serial: string, issuer: X509Certificate, now: Date): OcspVerdict {
  if (der === undefined || der.length === 0) return { status: 'not stapled', detail: 'the server sent no OCSP response in the handshake (no <certificate>.ocsp yet? run the staple timer)' };
  try {
    const outer = children(der, tlv(der, 0));
    const status = der[outer[0]!.body];
    if (status !== 0) return { status: 'invalid', detail: `responseStatus ${status} (not successful)` };
    const bytes = children(der, children(der, outer[1]!)[0]!);
    if (!der.subarray(bytes[0]!.start, bytes[0]!.end).equals(ID_PKIX_OCSP_BASIC)) return { status: 'invalid', detail: 'not a basic OCSP response' };
    const basicBuf = der.subarray(bytes[1]!.body, bytes[1]!.end);
    const basic = children(basicBuf, tlv(basicBuf, 0));
    const [tbs, , sig, certs] = basic;
    if (!tbs || !sig) throw new Error('incomplete BasicOCSPResponse');
    // The signer: the issuer itself, or the first certificate sent, which the issuer must have delegated.
    let signer = issuer;
    if (certs && certs.tag === 0xa0) {
      const first = children(basicBuf, children(basicBuf, certs)[0]!)[0];
      if (first) {
        const responder = new X509Certificate(basicBuf.subarray(first.start, first.end));
        if (!responder.checkIssued(issuer) || !responder.verify(issuer.publicKey)) return { status: 'invalid', detail: `signed by ${responder.subject.replace(/\n/g, ', ')}, which ${issuer.subject.replace(/\n/g, ', ')} did not issue` };
        if (!(responder.keyUsage ?? []).includes(OCSP_SIGNING)) return { status: 'invalid', detail: 'the responder certificate lacks id-kp-OCSPSigning' };
        signer = responder;
      }
    }
    const signature = basicBuf.subarray(sig.body + 1, sig.end);
    if (!verifySignature('sha256', basicBuf.subarray(tbs.start, tbs.end), signer.publicKey, signature)) return { status: 'invalid', detail: 'the response signature does not verify' };
    const data = children(basicBuf, tbs).filter((c) => c.tag === 0x30);
    const responses = data[0];
    if (!responses) throw new Error('no responses');
    for (const single of children(basicBuf, responses)) {
      const [certId, certStatus, thisUpdate, next] = children(basicBuf, single);
      const id = children(basicBuf, certId!);
      const serialTlv = id[3]!;
      const got = basicBuf.toString('hex', serialTlv.body, serialTlv.end).replace(/^(00)+(?=.)/, '');
      if (got !== serial) continue;
      const times = `thisUpdate ${generalizedTime(basicBuf, thisUpdate!).toISOString()}`;
      const nextUpdate = next && next.tag === 0xa0 ? generalizedTime(basicBuf, children(basicBuf, next)[0]!) : undefined;
      if (nextUpdate && nextUpdate.getTime() < now.getTime()) return { status: 'invalid', detail: `stale: nextUpdate ${nextUpdate.toISOString()} has passed (is the staple timer running?)` };
      const when = `${times}${nextUpdate ? `, nextUpdate ${nextUpdate.toISOString()}` : ''}`;
      if (certStatus!.tag === 0x80) return { status: 'good', detail: `good (${when})` };
      if (certStatus!.tag === 0xa1) {
        const rev = children(basicBuf, certStatus!);
        const at = generalizedTime(basicBuf, rev[0]!).toISOString();
        const reasonTlv = rev[1] && rev[1].tag === 0xa0 ? children(basicBuf, rev[1])[0] : undefined;
        const reason = reasonTlv ? REASONS[basicBuf[reasonTlv.body]!] ?? 'unknown reason' : 'unspecified';
        return { status: 'revoked', detail: `revoked at ${at} (${reason}); ${when}` };
      }
      return { status: 'unknown', detail: `the responder does not know serial ${serial} (${when})` };
    }
    return { status: 'invalid', detail: `the response is about another certificate, not serial ${serial}` };
  } catch (e) {
    return { status: 'invalid', detail: `unreadable OCSP response (${(e as Error).message})` };
  }
}
