"""`python -m pythia.launch_server [flags]`: starts the engine process and the HTTP server."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing as mp
import sys

from pythia.server_args import ServerArgs

logger = logging.getLogger("pythia")


def launch(args: ServerArgs) -> None:
    import uvicorn

    from pythia.entrypoints.http_server import create_app
    from pythia.entrypoints.server_state import ServerState
    from pythia.managers.engine import DEFAULT_MODEL_NAME, load_tokenizer, resolve_model_path
    from pythia.managers.engine_process import run_engine_process
    from pythia.managers.frontend import Frontend, ipc_addresses

    model_path = resolve_model_path(args)  # converts the default model once, before forking
    requests_addr, outputs_addr = ipc_addresses()
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe(duplex=False)
    engine_args = dataclasses.replace(args, model_path=str(model_path),
                                      served_model_name=args.served_model_name or args.model_path or DEFAULT_MODEL_NAME)
    engine = ctx.Process(target=run_engine_process, args=(engine_args, requests_addr, outputs_addr, child_end),
                         name="pythia-engine", daemon=True)
    engine.start()
    tokenizer = load_tokenizer(model_path)
    status, payload = parent_end.recv()
    if status != "ready":
        sys.exit(f"the engine failed to start: {payload}")
    frontend = Frontend(tokenizer, payload, requests_addr, outputs_addr, args.max_queued_requests)
    app = create_app(ServerState(args, frontend, engine))
    logger.info("serving %s on http://%s:%d", payload["served_model_name"], args.host, args.port)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_keep_alive=5,
                    timeout_graceful_shutdown=5)
    finally:
        engine.terminate()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pythia.launch_server",
                                     description="Serve a Llama-family model with SGLang's and OpenAI's HTTP APIs.")
    ServerArgs.add_cli_args(parser)
    args = ServerArgs.from_cli_args(parser.parse_args(argv))
    try:
        args.validate()
    except ValueError as e:  # a bad flag: usage and the message, exit status 2, no traceback
        parser.error(str(e))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    launch(args)


if __name__ == "__main__":
    main()
