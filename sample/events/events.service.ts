import { Injectable } from '@nestjs/common';
import { InjectPool, MongoPool } from 'nestjs-pool';

export interface SampleEvent {
  type: string;
  userId: number;
  at: Date;
}

/** An append-only event log in MongoDB, through leases on the `events` pool. */
@Injectable()
export class EventsService {
  constructor(@InjectPool('events') private readonly events: MongoPool) {}

  async record(type: string, userId: number): Promise<void> {
    await this.events.use((db) =>
      db.collection<SampleEvent>('events').insertOne({ type, userId, at: new Date() }),
    );
  }

  async recent(limit = 20): Promise<SampleEvent[]> {
    return this.events.use((db) =>
      db
        .collection<SampleEvent>('events')
        .find({}, { projection: { _id: 0 } })
        .sort({ at: -1 })
        .limit(limit)
        .toArray(),
    );
  }
}
