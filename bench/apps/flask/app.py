"""The bench's Flask app: the seed article's shape, one route on Flask's own server."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello from flask\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8080)
