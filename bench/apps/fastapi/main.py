"""The bench's FastAPI app, served by uvicorn with its standard extras."""
from fastapi import FastAPI

app = FastAPI(title="bench")


@app.get("/")
def index():
    return {"app": "fastapi", "ok": True}
