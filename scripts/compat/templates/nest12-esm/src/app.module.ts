import { Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PoolModule } from 'nestjs-pool';
import { PoolAdminModule } from 'nestjs-pool/admin';
import { PoolHealthModule } from 'nestjs-pool/health';
import { HealthController } from './health.controller.js';
import { UsersController } from './users.controller.js';
import { UsersService } from './users.service.js';

@Module({
  imports: [
    // process.env.DATABASE_URL is `string | undefined` under strict: `uri` must accept that.
    PoolModule.forRoot({
      name: 'users',
      backend: 'postgres',
      uri: process.env.DATABASE_URL,
      pool: { max: 2 },
    }),
    TerminusModule,
    PoolHealthModule,
    // The admin API's controllers are built at runtime (their path is an option): checked on both Nest majors.
    PoolAdminModule.forRoot({ token: process.env.POOL_ADMIN_TOKEN }),
  ],
  controllers: [UsersController, HealthController],
  providers: [UsersService],
})
export class AppModule implements OnApplicationShutdown {
  onApplicationShutdown(signal?: string): void {
    // Read by scripts/compat/run.mjs: SIGTERM went through Nest's shutdown hooks (enableShutdownHooks()).
    console.log(`COMPAT_SHUTDOWN ${signal}`);
  }
}
