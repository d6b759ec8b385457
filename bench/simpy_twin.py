"""A SimPy twin of the engine benchmark's workload (crosstalk-bench's `big_run`), written the
straightforward way, to say what "fast" means for a discrete-event simulation in Python.

The workload, as the Rust scenario runs it: a client reads a random order 50 times a second
(intervals drawn uniformly from half to one and a half times the mean) and renames a random
product 0.5 times a second. A read goes Client -> Order; Order takes one of its 64
connections to Product and calls Product once per product of the order (8), one after another,
then answers the client. A rename goes Client -> Product, which writes the row and answers.
Every hop takes 1 ms plus up to a quarter more at random. Every message is recorded as sent and
as delivered, and every operation as started and finished with its latency, as a trace the
size of the Rust engine's (about 380,000 events for 200 s).

Usage: python bench/simpy_twin.py [RUNS]. Prints each run, then `events seconds` (the fastest)
on the last line.
"""

import random
import sys
import time

import simpy

UNTIL_S = 200.0
READ_EVERY_S = 1 / 50
RENAME_EVERY_S = 1 / 0.5
PRODUCTS_PER_ORDER = 8
POOL_SIZE = 64
LATENCY_S = 0.001
ORDERS = 20
PRODUCTS = 8
CLIENT, ORDER, PRODUCT = 0, 1, 2


class World:
    def __init__(self, seed):
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.pool = simpy.Resource(self.env, capacity=POOL_SIZE)
        self.trace = []
        self.next_msg = 0
        self.next_op = 0
        self.names = {p: (f"Product {p}", 1) for p in range(1, PRODUCTS + 1)}

    def record(self, event):
        self.trace.append((self.env.now, event))

    def hop(self, sender, receiver, kind, label, op):
        """One message: recorded as sent, delivered after the link's delay."""
        msg = self.next_msg
        self.next_msg += 1
        self.record(("sent", msg, sender, receiver, kind, label, op))
        yield self.env.timeout(LATENCY_S + self.rng.uniform(0, LATENCY_S / 4))
        self.record(("delivered", msg))

    def start_op(self, name):
        op = self.next_op
        self.next_op += 1
        self.record(("op_started", op, name, CLIENT))
        return op, self.env.now

    def finish_op(self, op, started, observed):
        self.record(("op_finished", op, "ok", self.env.now - started, observed))

    def read(self):
        op, started = self.start_op("read order")
        order = self.rng.randint(1, ORDERS)
        yield from self.hop(CLIENT, ORDER, "request", f"GET /orders/{order}", op)
        observed = []
        with self.pool.request() as connection:
            yield connection
            for product in range(1, PRODUCTS_PER_ORDER + 1):
                yield from self.hop(ORDER, PRODUCT, "request", f"GET /products/{product}", op)
                name, version = self.names[product]
                yield from self.hop(PRODUCT, ORDER, "response", f"200 {name}", op)
                observed.append((PRODUCT, "products", str(product), version))
        yield from self.hop(ORDER, CLIENT, "response", f"200 order {order}", op)
        self.finish_op(op, started, observed)

    def rename(self):
        op, started = self.start_op("rename product")
        product = self.rng.randint(1, PRODUCTS)
        name = f"Product {product} v{self.rng.randint(0, 999)}"
        yield from self.hop(CLIENT, PRODUCT, "request", f"PUT /products/{product}", op)
        version = self.names[product][1] + 1
        self.names[product] = (name, version)
        self.record(("row_written", PRODUCT, "products", str(product), name, version))
        yield from self.hop(PRODUCT, CLIENT, "response", f"200 renamed {product}", op)
        self.finish_op(op, started, [(PRODUCT, "products", str(product), version)])

    def workload(self, every, operation):
        while True:
            yield self.env.timeout(every / 2 + self.rng.uniform(0, every))
            self.env.process(operation())

    def run(self):
        self.env.process(self.workload(READ_EVERY_S, self.read))
        self.env.process(self.workload(RENAME_EVERY_S, self.rename))
        self.env.run(until=UNTIL_S)
        return len(self.trace)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    World(0).run()  # warm-up
    times = []
    events = 0
    for i in range(runs):
        started = time.perf_counter()
        events = World(i + 1).run()
        times.append(time.perf_counter() - started)
        print(f"run {i + 1}: {events} events in {times[-1]:.3f} s", flush=True)
    print(f"{events} {min(times)}")


if __name__ == "__main__":
    main()
