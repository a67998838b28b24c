/**
 * Where model artifacts live: a local directory, `s3://bucket/prefix`, or an `http(s)://` URL
 * (one artifact, or an index listing a repository's files).
 */
import { InvalidInputError } from '../core/errors.js';

export interface S3Location {
  kind: 's3';
  bucket: string;
  /** Key prefix without leading slash; ends with '/' unless empty. */
  prefix: string;
  url: string;
}

export interface HttpLocation {
  kind: 'http';
  url: string;
}

export type RemoteLocation = S3Location | HttpLocation;

export function isRemote(location: string): boolean {
  return /^(s3|https?):\/\//i.test(location);
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseRemote(location: string): RemoteLocation {
  if (/^s3:\/\//i.test(location)) {
    const rest = location.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (!BUCKET.test(bucket)) throw new InvalidInputError(`'${location}': '${bucket}' is not a valid S3 bucket name (s3://bucket/prefix)`);
    let prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+/, '');
    if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
    if (prefix.split('/').some((part) => part === '..' || part === '.')) throw new InvalidInputError(`'${location}': the prefix may not hold '.' or '..' segments`);
    return { kind: 's3', bucket, prefix, url: `s3://${bucket}/${prefix}` };
  }
  if (/^https?:\/\//i.test(location)) {
    let parsed: URL;
    try {
      parsed = new URL(location);
    } catch {
      throw new InvalidInputError(`'${location}' is not a valid URL`);
    }
    return { kind: 'http', url: parsed.toString() };
  }
  throw new InvalidInputError(`'${location}' is neither s3://bucket/prefix nor an http(s):// URL`);
}

/** A URL fit for logs: no user info, no query (presigned URLs carry credentials there). */
export function redactLocation(location: string): string {
  if (!/^https?:\/\//i.test(location)) return location;
  try {
    const u = new URL(location);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return location;
  }
}
