// A NestJS app on its Express adapter, as `nest new` makes one, for the warm scenario:
// a module, a controller with route and parameter decorators, an injected service and a
// pipe. Written in plain JavaScript (the decorators applied as the TypeScript compiler
// would), so it needs no build step. The default export is the Express instance Nest
// serves through, initialised: what corral loads.
//
// GET /items?limit=N  a page of items as JSON
// GET /items/:id      one item (ParseIntPipe; 404 when missing)
// GET /               {"status":"ok"} (the bench's readiness probe)
import 'reflect-metadata';
import express from 'express';
import { Controller, Get, Inject, Injectable, Module, NotFoundException, Param, ParseIntPipe, Query } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';

class ItemsService {
  constructor() {
    this.items = Array.from({ length: 500 }, (_, i) => ({
      id: i, name: `item ${i}`, price: Math.round(((i * 7919) % 10000)) / 100, tags: ['a', 'b', 'c'].slice(0, (i % 3) + 1),
    }));
  }

  page(limit) {
    return this.items.slice(0, limit);
  }

  one(id) {
    return this.items[id];
  }
}
Injectable()(ItemsService);

class ItemsController {
  constructor(items) {
    this.items = items;
  }

  list(limit) {
    const n = Math.min(100, Math.max(1, Number(limit) || 20));
    return { count: n, items: this.items.page(n) };
  }

  one(id) {
    const item = this.items.one(id);
    if (!item) throw new NotFoundException(`no item ${id}`);
    return item;
  }
}
Inject(ItemsService)(ItemsController, undefined, 0);
Query('limit')(ItemsController.prototype, 'list', 0);
Param('id', ParseIntPipe)(ItemsController.prototype, 'one', 0);
decorate(ItemsController, 'list', Get());
decorate(ItemsController, 'one', Get(':id'));
Controller('items')(ItemsController);

class HealthController {
  health() {
    return { status: 'ok' };
  }
}
decorate(HealthController, 'health', Get());
Controller()(HealthController);

class AppModule {}
Module({ controllers: [ItemsController, HealthController], providers: [ItemsService] })(AppModule);

/** A method decorator applied as TypeScript's __decorate does. */
function decorate(cls, key, decorator) {
  const desc = Object.getOwnPropertyDescriptor(cls.prototype, key);
  Object.defineProperty(cls.prototype, key, decorator(cls.prototype, key, desc) ?? desc);
}

const server = express();
const app = await NestFactory.create(AppModule, new ExpressAdapter(server), { logger: false });
await app.init();

export default server;
