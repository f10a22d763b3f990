"""The bench's uv-locked app: a Flask API that validates its data with pydantic."""
from flask import Flask
from pydantic import BaseModel

app = Flask(__name__)


class Item(BaseModel):
    name: str
    count: int


STOCK = [Item(name="bolts", count=120), Item(name="nuts", count=80)]


@app.get("/")
def index():
    return {"app": "uvlock", "items": [item.model_dump() for item in STOCK]}
