/**
 * The Cloud TPU v2 and long-running-operations services, loaded from the .proto files the
 * client itself ships (`@google-cloud/tpu/build/protos`, imports from `google-gax/build/protos`):
 * the fake speaks exactly the wire format the real client expects.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
/** The package folder of `@google-cloud/tpu` and of the google-gax it resolves. */
const tpuDir = dirname(require.resolve('@google-cloud/tpu/package.json'));
const gaxDir = dirname(createRequire(join(tpuDir, 'package.json')).resolve('google-gax/package.json'));

export const INCLUDE_DIRS = [join(tpuDir, 'build', 'protos'), join(gaxDir, 'build', 'protos')];
const FILES = ['google/cloud/tpu/v2/cloud_tpu.proto', 'google/longrunning/operations.proto'];

export interface TpuProtos {
  tpuService: grpc.ServiceDefinition;
  operationsService: grpc.ServiceDefinition;
  /** Encodes a message (plain object, enums by name or number) to bytes, for `google.protobuf.Any`. */
  encode(typeName: string, value: Record<string, unknown>): Buffer;
}

let cached: TpuProtos | undefined;

export function loadTpuProtos(): TpuProtos {
  if (cached !== undefined) return cached;
  const definition = protoLoader.loadSync(FILES, {
    includeDirs: INCLUDE_DIRS,
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const tpuService = definition['google.cloud.tpu.v2.Tpu'] as grpc.ServiceDefinition | undefined;
  const operationsService = definition['google.longrunning.Operations'] as grpc.ServiceDefinition | undefined;
  if (tpuService === undefined || operationsService === undefined) throw new Error('TPU v2 / Operations services not found in the shipped protos');

  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    for (const dir of INCLUDE_DIRS) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(FILES, { keepCase: false });
  const encode = (typeName: string, value: Record<string, unknown>): Buffer => {
    const type = root.lookupType(typeName);
    return Buffer.from(type.encode(type.fromObject(value)).finish());
  };
  cached = { tpuService, operationsService, encode };
  return cached;
}
