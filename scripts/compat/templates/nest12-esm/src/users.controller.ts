import { Controller, Get } from '@nestjs/common';
import { UsersService, type One } from './users.service.js';

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get('one')
  one(): Promise<One> {
    return this.users.one();
  }
}
