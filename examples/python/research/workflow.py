"""AI research, summarized: the LLM plans three research questions, a
knowledge-base search runs for each of them in parallel, and the LLM
summarizes what was found into a report.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md). The LLM is a slow, sometimes overloaded dependency: each call
is retried (`RetryPolicy(maximum_attempts=3)`) and must heartbeat at
least every two seconds while its answer streams in.
"""
import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import List

from caisson import workflow  # was: from temporalio import workflow
from caisson.common import RetryPolicy  # was: from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import Completion, SearchInput, Snippet, llm_complete, search_knowledge_base


@dataclass
class ResearchRequest:
    topic: str


@dataclass
class ResearchReport:
    topic: str
    questions: List[str]
    sources: List[str]
    summary: str
    llm_attempts: int


@dataclass
class ResearchStatus:
    stage: str = "planning"
    questions: List[str] = field(default_factory=list)
    sources: List[str] = field(default_factory=list)


@workflow.defn
class ResearchWorkflow:
    def __init__(self) -> None:
        self._status = ResearchStatus()
        self._llm_attempts = 0

    @workflow.run
    async def run(self, request: ResearchRequest) -> ResearchReport:
        topic = request.topic

        # 1. Plan: the LLM proposes the research questions, one per line.
        plan = await self._llm(f"PLAN\nTOPIC: {topic}\nList three research questions, one per line.")
        questions = [line.lstrip("0123456789. ").strip() for line in plan.splitlines()]
        questions = [q for q in questions if q]
        self._status.questions = questions

        # 2. Research: one knowledge-base search per question, in parallel.
        self._status.stage = "researching"
        found: List[List[Snippet]] = await asyncio.gather(
            *(
                workflow.execute_activity(
                    search_knowledge_base, SearchInput(question=q), start_to_close_timeout=timedelta(seconds=10)
                )
                for q in questions
            )
        )
        snippets: List[Snippet] = []
        for snippet in (s for batch in found for s in batch):
            if all(s.source != snippet.source for s in snippets):
                snippets.append(snippet)
        self._status.sources = [s.source for s in snippets]
        context = "".join(f"[{s.source}] {s.excerpt}\n" for s in snippets)

        # 3. Summarize what was found.
        self._status.stage = "summarizing"
        summary = await self._llm(f"SYNTHESIZE\nTOPIC: {topic}\nQuestions:\n" + "\n".join(questions) + f"\nContext:\n{context}")
        self._status.stage = "done"
        workflow.logger.info("research on %r done: %d sources, %d LLM attempts", topic, len(snippets), self._llm_attempts)
        return ResearchReport(
            topic=topic,
            questions=questions,
            sources=self._status.sources,
            summary=summary,
            llm_attempts=self._llm_attempts,
        )

    @workflow.query
    def status(self) -> ResearchStatus:
        return self._status

    async def _llm(self, prompt: str) -> str:
        """One LLM call: 30 s per attempt, a heartbeat at least every 2 s,
        three attempts at most."""
        completion: Completion = await workflow.execute_activity(
            llm_complete,
            prompt,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["LlmRejected", "Misconfigured"]),
        )
        self._llm_attempts += completion.attempt
        return completion.text
