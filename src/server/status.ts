/**
 * The only place that knows gRPC status codes: Arbiter errors → statuses.
 * A decision never becomes an error status (a refused token is a DENY);
 * statuses are for calls that cannot be answered at all.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { PermissionError, RequestError } from '../errors.js';

/** A `ServiceError` for a call that cannot be answered. */
export function serviceError(code: status, details: string, field?: string): Partial<ServiceError> {
  const metadata = new Metadata();
  if (field !== undefined) metadata.set('arbiter-field', field);
  return { code, details, metadata };
}

/**
 * Maps an error thrown while handling a call: a malformed request is
 * INVALID_ARGUMENT naming the field; a caller not allowed to ask is
 * PERMISSION_DENIED; anything else is INTERNAL with a generic
 * message (details of internal failures go to the log, not to callers).
 */
export function toServiceError(e: unknown): Partial<ServiceError> {
  if (e instanceof RequestError) return serviceError(status.INVALID_ARGUMENT, e.field === '' ? e.message : `${e.field}: ${e.message}`, e.field);
  if (e instanceof PermissionError) return serviceError(status.PERMISSION_DENIED, e.message);
  return serviceError(status.INTERNAL, 'internal error');
}
