import { Controller, Get } from '@nestjs/common';
import { EventsService, type SampleEvent } from './events.service.js';

@Controller('events')
export class EventsController {
  constructor(private readonly events: EventsService) {}

  @Get()
  recent(): Promise<SampleEvent[]> {
    return this.events.recent();
  }
}
