"""HTTP entry points: SGLang-native routes, OpenAI routes, workflow routes."""
