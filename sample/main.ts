import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  // SIGTERM/SIGINT → app.close(): pools drain, then close (both in onApplicationShutdown).
  app.enableShutdownHooks();
  await app.listen(Number(process.env['PORT'] ?? 3000), '127.0.0.1');
  console.log(`sample listening on ${await app.getUrl()}`);
}

void bootstrap();
