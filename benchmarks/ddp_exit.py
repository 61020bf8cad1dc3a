"""How often a two-process gloo run dies at exit, with and without the project's clean-up.

Each spawn starts 2 gloo processes that all-reduce and all-gather (as Lightning's evaluation
sync does) and then exit. Without ``utils.destroy_process_group_at_exit`` the group is left to
interpreter finalization, where gloo can abort the process (SIGABRT, "terminate called without
an active exception"); with it the group is destroyed by an exit handler first.

    python benchmarks/ddp_exit.py --spawns 40            # both settings, one after the other
"""

from __future__ import annotations

import argparse
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from llada_rec.utils import destroy_process_group_at_exit


def worker(rank: int, port: int, clean_exit: bool) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    if clean_exit:
        destroy_process_group_at_exit()
    for _ in range(20):
        values = torch.ones(100) * rank
        dist.all_reduce(values)
        gathered = [torch.zeros(100) for _ in range(2)]
        dist.all_gather(gathered, values)
        objects: list = [None, None]
        dist.all_gather_object(objects, {"rank": rank})
    dist.barrier()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spawns", type=int, default=40, help="two-process runs per setting")
    args = parser.parse_args()
    for clean_exit in (False, True):
        died = 0
        for _ in range(args.spawns):
            try:
                mp.spawn(worker, args=(free_port(), clean_exit), nprocs=2)
            except mp.ProcessExitedException as err:
                died += 1
                print(f"  {err}", flush=True)
        print(f"clean exit {'on ' if clean_exit else 'off'}: {died} of {args.spawns} spawns had a process die", flush=True)


if __name__ == "__main__":
    main()
