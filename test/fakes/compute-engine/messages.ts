/**
 * What Compute Engine says when something goes wrong, as the fake says it: the HTTP error body
 * of a refused call (`{ error: { code, message, errors: [{ message, domain, reason }] } }`, the
 * legacy format without a gRPC `status`, so the client maps the HTTP status to a code), and the
 * `error.errors[]` of a failed operation. Wordings are the API's own (Compute Engine
 * "Troubleshooting resource availability errors", quota errors as gcloud and Terraform print them).
 */

export interface HttpFailure {
  status: number;
  message: string;
  reason: string;
  domain?: string;
}

/** One entry of an operation's `error.errors`. */
export interface OperationErrorItem {
  code: string;
  message: string;
  errorDetails?: Array<Record<string, unknown>>;
}

/** A failed operation: its errors and the HTTP status the API files it under. */
export interface OperationFailure {
  errors: OperationErrorItem[];
  httpErrorStatusCode: number;
  httpErrorMessage: string;
}

export class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly domain: string;
  constructor(failure: HttpFailure) {
    super(failure.message);
    this.status = failure.status;
    this.reason = failure.reason;
    this.domain = failure.domain ?? 'global';
  }

  body(): Record<string, unknown> {
    return { error: { code: this.status, message: this.message, errors: [{ message: this.message, domain: this.domain, reason: this.reason }] } };
  }
}

export const regionOf = (zone: string): string => zone.replace(/-[a-z]$/, '');

export const notFound = (resource: string): HttpError => new HttpError({ status: 404, reason: 'notFound', message: `The resource '${resource}' was not found` });

export const alreadyExists = (resource: string): HttpError =>
  new HttpError({ status: 409, reason: 'alreadyExists', message: `The resource '${resource}' already exists` });

export const invalidField = (field: string, value: string, why: string): HttpError =>
  new HttpError({ status: 400, reason: 'invalid', message: `Invalid value for field '${field}': '${value}'. ${why}` });

export const invalidMachineType = (value: string, machineType: string, zone: string): HttpError =>
  invalidField('resource.machineType', value, `Machine type with name '${machineType}' does not exist in zone '${zone}'.`);

/** Another operation on the resource is still running (e.g. a second delete). */
export const notReady = (resource: string): HttpError => new HttpError({ status: 400, reason: 'resourceNotReady', message: `The resource '${resource}' is not ready` });

export const internalError = (): HttpError =>
  new HttpError({ status: 500, reason: 'backendError', message: "Internal error. Please try again or contact Google Support. (Code: '-5361738245375622147')" });

export const quotaMessage = (metric: string, limit: number, scope: string): string =>
  `Quota '${metric}' exceeded.  Limit: ${limit.toFixed(1)} in ${/-[a-z]$/.test(scope) ? 'zone' : 'region'} ${scope}.`;

/** Refused at once (the HTTP 403 gcloud prints as "Could not fetch resource: - Quota 'CPUS' exceeded"). */
export const quotaHttpError = (metric: string, limit: number, scope: string): HttpError =>
  new HttpError({ status: 403, reason: 'quotaExceeded', domain: 'usageLimits', message: quotaMessage(metric, limit, scope) });

/** The create operation's error when the project's quota is used up (Terraform: "Error waiting for instance to create: Quota 'N2_CPUS' exceeded"). */
export function quotaOperationFailure(metric: string, limit: number, scope: string): OperationFailure {
  const regional = !/-[a-z]$/.test(scope);
  return {
    errors: [
      {
        code: 'QUOTA_EXCEEDED',
        message: quotaMessage(metric, limit, scope),
        errorDetails: [
          {
            quotaInfo: {
              metricName: `compute.googleapis.com/${metric.toLowerCase()}`,
              limitName: `${metric.replace(/_/g, '-')}-per-project-${regional ? 'region' : 'zone'}`,
              dimensions: regional ? { region: scope } : { zone: scope },
              limit,
            },
          },
        ],
      },
    ],
    httpErrorStatusCode: 403,
    httpErrorMessage: 'FORBIDDEN',
  };
}

/**
 * The create operation's error when the zone has no capacity for the machine type. With attached
 * GPUs (an N1 VM with guestAccelerators) the API answers ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS,
 * naming the accelerators ("A n1-standard-4 VM instance with 1 nvidia-tesla-t4 accelerator(s) is
 * currently unavailable in the us-central1-b zone.", kubernetes/k8s.io#9834).
 */
export function stockoutOperationFailure(project: string, zone: string, machineType: string, attached?: { type: string; count: number }): OperationFailure {
  const what = attached === undefined ? `A ${machineType} VM instance` : `A ${machineType} VM instance with ${attached.count} ${attached.type} accelerator(s)`;
  return {
    errors: [
      {
        code: attached === undefined ? 'ZONE_RESOURCE_POOL_EXHAUSTED' : 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
        message: `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`,
        errorDetails: [
          {
            errorInfo: {
              reason: 'resource_availability',
              domain: 'compute.googleapis.com',
              metadatas: { zone, vmType: machineType, attachment: attached === undefined ? '' : `${attached.type}:${attached.count}`, zonesAvailable: '' },
            },
          },
          { help: { links: [{ description: 'Troubleshooting documentation', url: 'https://cloud.google.com/compute/docs/resource-error' }] } },
          {
            localizedMessage: {
              locale: 'en-US',
              message: `${what} is currently unavailable in the ${zone} zone. Alternatively, you can try your request again with a different VM hardware configuration or at a later time. For more information, see the troubleshooting documentation.`,
            },
          },
        ],
      },
    ],
    httpErrorStatusCode: 503,
    httpErrorMessage: 'SERVICE UNAVAILABLE',
  };
}
