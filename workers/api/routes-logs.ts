/**
 * A stage's log from the artifact store (where it outlives the compute), as text; `follow=true`
 * streams new lines until the stage's attempt ends (waiting first while the stage is pending).
 */
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Client } from '@temporalio/client';
import { printStageLog, stageWithLogs, type LogsOptions } from '../logs-command.ts';
import { describeRun } from '../runs.ts';
import { QueryFlag, RunId, Stage } from './schemas.ts';

export interface LogsRoutesOptions {
  client: Client;
}

const TEXT = 'text/plain; charset=utf-8';

export const logsRoutes: FastifyPluginAsyncZod<LogsRoutesOptions> = async (app, { client }) => {
  app.get(
    '/runs/:id/stages/:stage/logs',
    {
      schema: {
        summary: 'A stage\'s log',
        description: 'text/plain. follow=true keeps the response open and streams new lines until the stage\'s attempt ends.',
        tags: ['runs'],
        params: z.strictObject({ id: RunId, stage: Stage }),
        querystring: z.strictObject({
          attempt: z.coerce.number().int().min(1).max(1000).optional().describe('attempt (default: the latest)'),
          worker: z.coerce.number().int().min(0).max(1023).default(0).describe('worker of a multi-host slice'),
          follow: QueryFlag,
        }),
      },
    },
    async (request, reply) => {
      const { id, stage } = request.params;
      const { attempt, worker, follow } = request.query;
      await describeRun(client, id);
      let current = await stageWithLogs(client, id, stage);
      const options = (write: LogsOptions['write']): LogsOptions => ({ ...(attempt === undefined ? {} : { attempt }), worker, follow, write });

      if (!follow) {
        let text = '';
        await printStageLog(client, id, stage, options((chunk) => (text += chunk)));
        return reply.type(TEXT).send(text);
      }

      let gone = false;
      reply.raw.on('close', () => {
        gone = true;
      });
      const stream = new PassThrough();
      const follower = async (): Promise<void> => {
        // A pending stage has no attempt yet: wait for it to start (or to end without running).
        while (attempt === undefined && current.state === 'pending' && !gone) {
          await sleep(1000);
          current = await stageWithLogs(client, id, stage);
        }
        await printStageLog(
          client,
          id,
          stage,
          options((chunk) => {
            // Stops the follow at its next output once the client has gone.
            if (gone) throw new Error('the client went away');
            stream.write(chunk);
          }),
        );
      };
      follower().then(
        () => stream.end(),
        (error: unknown) => {
          if (gone) stream.destroy();
          else stream.end(`\n[recogdrive: following the log failed: ${(error as Error).message}]\n`);
        },
      );
      return reply.type(TEXT).send(stream);
    },
  );
};
