/**
 * Client certificates as credentials. The TLS layer has already verified the chain against the
 * configured CA; a door only hands the verified peer over with `setPeerCertificate(ctx, peer)`
 * (built with `peerFromTlsSocket` for HTTPS, `peerFromGrpcAuthContext` for gRPC). An
 * unverified certificate is never an identity.
 */
import type { TLSSocket } from 'node:tls';
import type { RequestContext } from '../../core/types.js';

export interface PeerCertificate {
  /** True only when the TLS handshake verified the chain against the configured CA. */
  verified: boolean;
  /** Subject common name. */
  commonName?: string;
  /** Subject alternative names: `DNS:host`, `URI:spiffe://...`, `email:...`. */
  altNames: string[];
  /** SHA-256 fingerprint, `AB:CD:...`. */
  fingerprint256?: string;
}

const peers = new WeakMap<RequestContext, PeerCertificate>();

/** Called by a door for a request that came over TLS with a client certificate. */
export function setPeerCertificate(ctx: RequestContext, peer: PeerCertificate): void {
  peers.set(ctx, peer);
}

export function peerCertificateOf(ctx: RequestContext): PeerCertificate | undefined {
  return peers.get(ctx);
}

function splitAltNames(text: string | undefined): string[] {
  return text === undefined || text === '' ? [] : text.split(/,\s*/).map((s) => s.trim());
}

/** From an HTTPS request's socket (`request.raw.socket` in Fastify). */
export function peerFromTlsSocket(socket: TLSSocket): PeerCertificate | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return undefined;
  const cn = cert.subject?.CN;
  return {
    verified: socket.authorized,
    ...(typeof cn === 'string' ? { commonName: cn } : {}),
    altNames: splitAltNames(cert.subjectaltname),
    ...(cert.fingerprint256 !== undefined ? { fingerprint256: cert.fingerprint256 } : {}),
  };
}

/**
 * From grpc-js's `call.getAuthContext()`. grpc-js only completes the handshake when the chain
 * verifies (with `checkClientCertificate` on), so a certificate present there is verified.
 */
export function peerFromGrpcAuthContext(auth: { transportSecurityType?: string; sslPeerCertificate?: { subject?: { CN?: string | string[] }; subjectaltname?: string; fingerprint256?: string } } | null): PeerCertificate | undefined {
  const cert = auth?.sslPeerCertificate;
  if (cert === undefined || auth?.transportSecurityType !== 'ssl') return undefined;
  const cn = cert.subject?.CN;
  return {
    verified: true,
    ...(typeof cn === 'string' ? { commonName: cn } : {}),
    altNames: splitAltNames(cert.subjectaltname),
    ...(cert.fingerprint256 !== undefined ? { fingerprint256: cert.fingerprint256 } : {}),
  };
}

/** Roles of a verified certificate: by CN, then by each SAN (`URI:...`, `DNS:...`), then the default. */
export function certificateIdentity(peer: PeerCertificate, roles: Record<string, string[]>, defaultRoles: string[]): { subject: string; roles: string[] } | undefined {
  if (!peer.verified) return undefined;
  const names = [...(peer.commonName !== undefined ? [peer.commonName] : []), ...peer.altNames];
  if (names.length === 0) return undefined;
  const found = new Set<string>();
  let listed = false;
  for (const name of names) {
    const bare = name.replace(/^(DNS|URI|email|IP Address):/, '');
    for (const key of [name, bare]) {
      const granted = roles[key];
      if (granted !== undefined) {
        listed = true;
        for (const r of granted) found.add(r);
      }
    }
  }
  return { subject: `cert:${names[0]!}`, roles: listed ? [...found] : [...defaultRoles] };
}
