import { Injectable, NotFoundException, type OnModuleInit } from '@nestjs/common';
import { InjectPool, PostgresPool, RedisPool } from 'nestjs-pool';
import { EventsService } from '../events/events.service.js';

export interface User {
  id: number;
  name: string;
}

const CACHE_TTL_SECONDS = 60;

/** Users in PostgreSQL, reads cached in Redis, every creation logged to MongoDB. */
@Injectable()
export class UsersService implements OnModuleInit {
  constructor(
    @InjectPool('users') private readonly users: PostgresPool,
    @InjectPool('cache') private readonly cache: RedisPool,
    private readonly events: EventsService,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.users.query(
      'CREATE TABLE IF NOT EXISTS sample_users (id serial PRIMARY KEY, name text NOT NULL)',
    );
  }

  async create(name: string): Promise<User> {
    // A transaction: BEGIN/COMMIT, ROLLBACK if anything throws.
    const user = await this.users.transaction(async (client) => {
      const result = await client.query<User>(
        'INSERT INTO sample_users (name) VALUES ($1) RETURNING id, name',
        [name],
      );
      return result.rows[0]!;
    });
    await this.events.record('user.created', user.id);
    return user;
  }

  /**
   * Cache-aside read: Redis first (the pool's shared client), PostgreSQL on a miss, read from a replica
   * when there are some (`users.read`; the primary otherwise, or when every replica is down).
   */
  async findOne(id: number): Promise<User & { cached: boolean }> {
    const key = `sample:user:${id}`;
    const hit = await this.cache.shared.get(key);
    if (hit !== null) return { ...(JSON.parse(hit) as User), cached: true };
    const result = await this.users.read.query<User>('SELECT id, name FROM sample_users WHERE id = $1', [id]);
    const user = result.rows[0];
    if (user === undefined) throw new NotFoundException(`user ${id} not found`);
    await this.cache.shared.set(key, JSON.stringify(user), 'EX', CACHE_TTL_SECONDS);
    return { ...user, cached: false };
  }
}
