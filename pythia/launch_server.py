"""`python -m pythia.launch_server [flags]`: starts the engine process and the HTTP server."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from pythia.server_args import ServerArgs

logger = logging.getLogger("pythia")


def launch(args: ServerArgs) -> None:
    import uvicorn

    from pythia.entrypoints.draining_server import DrainingServer
    from pythia.entrypoints.http_server import create_app
    from pythia.entrypoints.server_state import ServerState
    from pythia.managers.engine import DEFAULT_MODEL_NAME, load_tokenizer, resolve_model_path
    from pythia.managers.engine_supervisor import EngineStartError, EngineSupervisor, remove_stale_ipc_dirs
    from pythia.managers.frontend import Frontend

    model_path = resolve_model_path(args)  # converts the default model once, before forking
    engine_args = dataclasses.replace(args, model_path=str(model_path),
                                      served_model_name=args.served_model_name or args.model_path or DEFAULT_MODEL_NAME)
    remove_stale_ipc_dirs()
    supervisor = EngineSupervisor(engine_args)
    try:
        addrs = supervisor.addresses()
        try:
            info = supervisor.start(*addrs)
        except EngineStartError as e:
            sys.exit(f"the engine failed to start: {e}")
        frontend = Frontend(load_tokenizer(model_path), info, args.max_queued_requests)
        frontend.attach(*addrs)
        state = ServerState(args, frontend, supervisor)
        config = uvicorn.Config(create_app(state), host=args.host, port=args.port, log_level=args.log_level,
                                timeout_keep_alive=5, timeout_graceful_shutdown=5)
        logger.info("serving %s on http://%s:%d", info["served_model_name"], args.host, args.port)
        DrainingServer(config, state).run()
    finally:
        supervisor.close()  # also when startup failed; the app's shutdown already did it otherwise


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
