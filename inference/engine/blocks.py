"""The paged KV cache's books: which blocks are free, who uses each, and
which hold a prefix that a new request can reuse.

The backend owns the memory (a pool of n_blocks blocks of block_size
positions, per layer); this class only decides which block goes where. A
sequence's block table lists its blocks in order: position p is row
p % block_size of block table[p // block_size].

Prefix caching. A block that is full never changes again, so it is given a
key: (the key id of the block before it, its block_size token ids). Equal
keys mean the same tokens at the same positions after the same history, so
the same keys and values: a new request whose prompt starts with known full
blocks takes those blocks (their reference count goes up) and skips that
part of its prefill. When no sequence uses a block any more it is free, but
keeps its contents and key until it is reused for something else, least
recently freed first, so a prompt sent again soon still finds its prefix.
"""

from collections import OrderedDict


class BlockManager:
    def __init__(self, n_blocks: int, block_size: int):
        self.n_blocks, self.block_size = n_blocks, block_size
        self.refs = [0] * n_blocks                       # sequences using each block
        self.free: OrderedDict[int, None] = OrderedDict.fromkeys(range(n_blocks))  # LRU first
        self.key_of: dict[int, tuple] = {}               # full block -> its key
        self.key_id: dict[int, int] = {}                 # full block -> a number naming its key
        self.by_key: dict[tuple, int] = {}               # key -> the block that holds it
        self.next_key_id = 0

    # ------------------------------------------------------------ allocation

    def available(self) -> int:
        return len(self.free)

    def allocate(self) -> int:
        """A free block, the least recently freed; its old contents are forgotten."""
        block, _ = self.free.popitem(last=False)
        self.forget(block)
        self.refs[block] = 1
        return block

    def take(self, block: int) -> None:
        """Share a block that holds a cached prefix."""
        if self.refs[block] == 0:
            del self.free[block]
        self.refs[block] += 1

    def release(self, block_table: list[int]) -> None:
        """A sequence is done with its blocks (finished, cancelled or preempted)."""
        for block in reversed(block_table):  # its last blocks are the least likely to be shared: reuse them first
            self.refs[block] -= 1
            if self.refs[block] == 0:
                self.free[block] = None

    def usage(self) -> float:
        """The fraction of blocks some sequence is using (0..1)."""
        return 1 - len(self.free) / self.n_blocks

    # -------------------------------------------------------- prefix caching

    def seal(self, block_table: list[int], index: int, tokens: list[int]) -> None:
        """Block `index` of a table is now full with `tokens`: give it its key."""
        block = block_table[index]
        parent = self.key_id[block_table[index - 1]] if index > 0 else -1
        key = (parent, tuple(tokens))
        if block in self.key_id:  # sealed already (a cached block this sequence shares)
            return
        if key in self.by_key:  # another block holds the same contents: give this one the same name
            self.key_id[block] = self.key_id[self.by_key[key]]
            return
        self.key_of[block], self.by_key[key] = key, block
        self.key_id[block], self.next_key_id = self.next_key_id, self.next_key_id + 1

    def cached_prefix(self, tokens: list[int]) -> list[int]:
        """The blocks that already hold the longest run of full blocks at the
        start of `tokens`. Never all of them: the last token must still be
        computed, to get the logits that choose the next one."""
        blocks, parent = [], -1
        for i in range((len(tokens) - 1) // self.block_size):
            block = self.by_key.get((parent, tuple(tokens[i * self.block_size:(i + 1) * self.block_size])))
            if block is None:
                break
            blocks.append(block)
            parent = self.key_id[block]
        return blocks

    def forget(self, block: int) -> None:
        key = self.key_of.pop(block, None)
        if key is not None:
            del self.by_key[key]
        self.key_id.pop(block, None)
