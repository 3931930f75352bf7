import { Injectable } from '@nestjs/common';
// A value import, not `import type`: PostgresPool is a decorated constructor parameter's type, so it ends up
// in the emitted `design:paramtypes` metadata and must exist at runtime.
import { InjectPool, PostgresPool } from 'nestjs-pool';

export interface One {
  n: number;
}

@Injectable()
export class UsersService {
  constructor(@InjectPool('users') private readonly users: PostgresPool) {}

  async one(): Promise<One> {
    const result = await this.users.query<One>('SELECT 1 AS n');
    return result.rows[0];
  }
}
