"""A coding assistant looping LLM call -> (simulated) tool -> LLM call until it is done.

    make serve                     # in another shell
    .venv/bin/python examples/coding_assistant.py --url http://127.0.0.1:30000
"""

from __future__ import annotations

import argparse
import time

import sglang as sgl

from pythia.lang import PythiaEndpoint, Workflow


def build_workflow(max_tokens: int = 48) -> Workflow:
    wf = Workflow("coding-assistant")

    @wf.agent("assistant", successors=["assistant"], max_repeats={"assistant": 8},
              system_prompt="You fix failing tests by calling tools.")
    @sgl.function
    def assistant(s, history):
        s += sgl.system("You fix failing tests. Answer with the next tool to call: run_tests, read_file or done.")
        s += sgl.user(history)
        s += sgl.assistant(sgl.select("tool", ["run_tests", "read_file", "done"]) + sgl.gen("why", max_tokens=max_tokens,
                                                                                           temperature=0, stop="\n"))

    return wf


def run_tool(tool: str, turn: int) -> str:
    """Stands in for a real tool: takes a moment and returns a plausible result."""
    time.sleep(0.1)
    if tool == "run_tests":
        return "1 failed: test_parse (expected 3, got 2)" if turn < 2 else "all tests passed"
    return "def parse(s):\n    return len(s.split(','))"


def job(ctx, task: str, max_turns: int = 4) -> list[str]:
    history, tools = f"Task: {task}", []
    for turn in range(max_turns):
        state = ctx.call("assistant", history=history)
        tools.append(state["tool"])
        if state["tool"] == "done":
            break
        history += f"\nCalled {state['tool']}: {run_tool(state['tool'], turn)}"
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:30000")
    parser.add_argument("--task", default="test_parse fails: fix parse() in utils.py")
    args = parser.parse_args()
    endpoint = PythiaEndpoint(args.url, chat_template_name="chatml")
    print("tools called:", build_workflow().run(job, endpoint, task=args.task))


if __name__ == "__main__":
    main()
