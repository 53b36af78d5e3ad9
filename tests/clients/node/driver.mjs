// Runs one client scenario per request line, for tests/clients/test_node_clients.py.
//
// stdin:  one JSON object per line: {"id", "client": "openai" | "ai", "scenario", "model", "baseURL"}
// stdout: one line per request: "@@ " + JSON {"id", "ok": true, "result"} or {"id", "ok": false, "error"}
// (lines without the "@@ " prefix are not results: libraries may log).
import { createInterface } from "node:readline";

import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const PNG_URL = `data:image/png;base64,${PNG}`;
const ASK = "What is the weather in Paris?";
const KEY = "sk-client-side-key-not-checked";
const Weather = z.object({ city: z.string(), celsius: z.number().int() });
const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    },
    strict: true,
  },
};
const weather = (city) => JSON.stringify({ city, celsius: 21 });

function errorInfo(err) {
  return {
    name: err?.constructor?.name ?? typeof err,
    message: String(err?.message ?? err),
    status: err?.status ?? err?.statusCode ?? null,
    param: err?.param ?? err?.error?.param ?? null,
    body: err?.responseBody ?? null,
  };
}

// --- the official openai package ---------------------------------------------------------------------

const openaiScenarios = {
  async chat(client, model) {
    const c = await client.chat.completions.create({ model, messages: [{ role: "user", content: ASK }] });
    return { content: c.choices[0].message.content, finish: c.choices[0].finish_reason, usage: c.usage };
  },
  async stream(client, model) {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: ASK }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage = null;
    const finish = [];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? "";
        if (choice.finish_reason) finish.push(choice.finish_reason);
      }
      usage = chunk.usage ?? usage;
    }
    return { text, finish, usage };
  },
  async parse(client, model) {
    const c = await client.chat.completions.parse({
      model,
      messages: [{ role: "user", content: ASK }],
      response_format: zodResponseFormat(Weather, "weather"),
    });
    return { parsed: c.choices[0].message.parsed };
  },
  async tool_loop(client, model) {
    const messages = [{ role: "user", content: ASK }];
    const first = await client.chat.completions.create({
      model,
      messages,
      tools: [WEATHER_TOOL],
      parallel_tool_calls: false,
    });
    const message = first.choices[0].message;
    messages.push(message);
    for (const call of message.tool_calls ?? []) {
      messages.push({ role: "tool", tool_call_id: call.id, content: weather(JSON.parse(call.function.arguments).city) });
    }
    const second = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL] });
    return {
      calls: (message.tool_calls ?? []).map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
      finish: first.choices[0].finish_reason,
      final: second.choices[0].message.content,
    };
  },
  async stream_tools(client, model) {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: ASK }],
      tools: [WEATHER_TOOL],
      stream: true,
    });
    const names = [];
    let args = "";
    const finish = [];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        for (const call of choice.delta.tool_calls ?? []) {
          if (call.function?.name) names.push(call.function.name);
          args += call.function?.arguments ?? "";
        }
        if (choice.finish_reason) finish.push(choice.finish_reason);
      }
    }
    return { names, args: JSON.parse(args), finish };
  },
  async image(client, model) {
    const c = await client.chat.completions.create({
      model,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in this image?" },
            { type: "image_url", image_url: { url: PNG_URL } },
          ],
        },
      ],
    });
    return { content: c.choices[0].message.content };
  },
  async reasoning(client, model) {
    const c = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "What is 2 + 2?" }],
      reasoning_effort: "low",
    });
    return { content: c.choices[0].message.content };
  },
};

// --- the Vercel AI SDK ---------------------------------------------------------------------------------

const getWeather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, celsius: 21 }),
});

const aiScenarios = {
  async generateText(chat) {
    const r = await generateText({ model: chat, maxRetries: 0, prompt: ASK });
    return { text: r.text, finish: r.finishReason, usage: r.usage };
  },
  async streamText(chat) {
    const r = streamText({ model: chat, maxRetries: 0, prompt: ASK });
    let text = "";
    for await (const piece of r.textStream) text += piece;
    return { text, finish: await r.finishReason, usage: await r.usage };
  },
  async generateObject(chat) {
    const r = await generateObject({ model: chat, maxRetries: 0, schema: Weather, prompt: ASK });
    return { object: r.object };
  },
  async outputObject(chat) {
    const r = await generateText({ model: chat, maxRetries: 0, output: Output.object({ schema: Weather }), prompt: ASK });
    return { output: r.output };
  },
  async tool(chat) {
    const r = await generateText({ model: chat, maxRetries: 0, tools: { get_weather: getWeather }, stopWhen: stepCountIs(3), prompt: ASK });
    const calls = r.steps.flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input]));
    return { text: r.text, calls, steps: r.steps.length };
  },
  async streamTool(chat) {
    const r = streamText({ model: chat, maxRetries: 0, tools: { get_weather: getWeather }, stopWhen: stepCountIs(3), prompt: ASK });
    let text = "";
    const calls = [];
    for await (const part of r.fullStream) {
      if (part.type === "text-delta") text += part.text;
      if (part.type === "tool-call") calls.push([part.toolName, part.input]);
      if (part.type === "error") throw part.error;
    }
    return { text, calls };
  },
  async image(chat) {
    const r = await generateText({
      model: chat,
      maxRetries: 0,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in this image?" },
            { type: "image", image: Buffer.from(PNG, "base64"), mediaType: "image/png" },
          ],
        },
      ],
    });
    return { text: r.text };
  },
  async reasoning(chat) {
    const r = await generateText({
      model: chat,
      maxRetries: 0,
      prompt: "What is 2 + 2?",
      providerOptions: { openai: { reasoningEffort: "low" } },
    });
    return { text: r.text };
  },
};

async function run(request) {
  if (request.client === "openai") {
    const client = new OpenAI({ baseURL: request.baseURL, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
    return openaiScenarios[request.scenario](client, request.model);
  }
  const chat = createOpenAI({ baseURL: request.baseURL, apiKey: KEY }).chat(request.model);
  return aiScenarios[request.scenario](chat);
}

// every AI SDK call above has maxRetries: 0 (the default retries twice): one call per scripted reply
globalThis.AI_SDK_LOG_WARNINGS = false; // warnings would go to stderr; the tests check the wire instead

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  let answer;
  try {
    answer = { id: request.id, ok: true, result: await run(request) };
  } catch (err) {
    answer = { id: request.id, ok: false, error: errorInfo(err) };
  }
  process.stdout.write(`@@ ${JSON.stringify(answer)}\n`);
}
