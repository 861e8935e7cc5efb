FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tally
COPY pyproject.toml constraints.txt README.md ./
COPY node ./node
COPY client ./client
COPY bank ./bank
COPY contracts ./contracts
COPY tally_cli ./tally_cli
COPY tally_common ./tally_common
RUN pip install --no-cache-dir -c constraints.txt .
EXPOSE 8545 8546
ENTRYPOINT ["tally"]
CMD ["dev", "--datadir", "/data", "--host", "0.0.0.0"]
