"""A planner hands steps to coders working in parallel; a reviewer checks their work.

    make serve                     # in another shell
    .venv/bin/python examples/planner_coders_reviewer.py --url http://127.0.0.1:30000
"""

from __future__ import annotations

import argparse

import sglang as sgl

from pythia.lang import PythiaEndpoint, Workflow


def build_workflow(max_tokens: int = 64) -> Workflow:
    wf = Workflow("planner-coders-reviewer")

    @wf.agent("planner", successors=["coder"], system_prompt="You split programming tasks into steps.")
    @sgl.function
    def planner(s, task):
        s += sgl.system("You split programming tasks into short numbered steps.")
        s += sgl.user(f"Task: {task}\nGive two steps.")
        s += sgl.assistant(sgl.gen("plan", max_tokens=max_tokens, temperature=0))

    @wf.agent("coder", successors=["reviewer"], system_prompt="You write Python.")
    @sgl.function
    def coder(s, plan, step):
        s += sgl.system("You write short Python code.")
        s += sgl.user(f"Plan:\n{plan}\nWrite the code for step {step}.")
        s += sgl.assistant(sgl.gen("code", max_tokens=max_tokens, temperature=0))

    @wf.agent("reviewer", successors=["coder"], max_repeats={"coder": 1}, system_prompt="You review code.")
    @sgl.function
    def reviewer(s, code):
        s += sgl.system("You review Python code.")
        s += sgl.user(f"Review this code:\n{code}\nIs it correct?")
        s += sgl.assistant(sgl.select("verdict", ["yes", "no"]))

    return wf


def job(ctx, task: str):
    plan = ctx.call("planner", task=task)["plan"]
    drafts = ctx.parallel("coder", [{"plan": plan, "step": i} for i in (1, 2)])
    code = "\n".join(d["code"] for d in drafts)
    return ctx.call("reviewer", code=code)["verdict"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:30000")
    parser.add_argument("--task", default="Read a CSV file and print the sum of its second column.")
    args = parser.parse_args()
    endpoint = PythiaEndpoint(args.url, chat_template_name="chatml")
    wf = build_workflow()
    print("verdict:", wf.run(job, endpoint, task=args.task))


if __name__ == "__main__":
    main()
