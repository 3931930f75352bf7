import { BadRequestException, Body, Controller, Get, Param, ParseIntPipe, Post } from '@nestjs/common';
import { UsersService, type User } from './users.service.js';

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  create(@Body() body: { name?: unknown }): Promise<User> {
    if (typeof body?.name !== 'string' || body.name.trim() === '') {
      throw new BadRequestException('name must be a non-empty string');
    }
    return this.users.create(body.name.trim());
  }

  @Get(':id')
  findOne(@Param('id', ParseIntPipe) id: number): Promise<User & { cached: boolean }> {
    return this.users.findOne(id);
  }
}
