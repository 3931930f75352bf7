import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn', 'log'] });
  app.enableShutdownHooks();
  // After app.close() Nest re-raises the signal to end the process. This extra listener keeps that from
  // killing it, so the process has to exit on its own (exit code 0) once nothing is left open: the compat
  // check fails if a pool leaves a socket or a timer behind.
  process.on('SIGTERM', () => {
    setTimeout(() => {
      console.error(`COMPAT_STILL_RUNNING ${JSON.stringify(process.getActiveResourcesInfo())}`);
    }, 3_000).unref();
  });
  await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  // Read by scripts/compat/run.mjs: the port, and which build of nestjs-pool Node picked.
  console.log(`COMPAT_READY ${JSON.stringify({ port, resolved: require.resolve('nestjs-pool') })}`);
}

void bootstrap();
