"""The embedded local model engine (llama.cpp through xllamacpp), bridged to asyncio."""
