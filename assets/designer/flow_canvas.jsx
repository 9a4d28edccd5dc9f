// The designer's canvas: React Flow with the component palette beside it.
//
// Positions live here while nodes are dragged; the server (Python state) hears only of finished gestures:
// a drag that stopped, a connection, a deletion, a drop from the palette, a click. So a 200-node flow costs
// the server a handful of events per edit, never one per mouse move. The server sends the graph back only
// when its content changed (a node added, a problem found), and local positions of a node being dragged win.
import React, { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  Background,
  Controls,
  Handle,
  MiniMap,
  Panel,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useEdgesState,
  useNodesState,
  useReactFlow,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";

const DRAG_TYPE = "application/x-hub-component";
// Never zoom in past 100% to fit: a flow of one or two steps would otherwise fill the canvas at twice the size.
const FIT_OPTIONS = { padding: 0.2, maxZoom: 1 };

const STATUS_COLORS = { succeeded: "#2f9e44", failed: "#e03131", running: "#1c7ed6", skipped: "#868e96" };

const HubNode = memo(function HubNode({ id, data, selected }) {
  const problems = data.problems || [];
  const run = data.run || null;
  const border = problems.length ? "#e03131" : selected ? "#4263eb" : "#ced4da";
  return (
    <div
      data-testid={`node-${id}`}
      data-problems={problems.length}
      title={problems.join("\n")}
      style={{
        width: 210,
        background: "var(--color-panel-solid, #fff)",
        border: `2px solid ${border}`,
        borderRadius: 10,
        padding: "8px 10px",
        boxShadow: selected ? "0 0 0 3px rgba(66,99,235,0.25)" : "0 1px 2px rgba(0,0,0,0.08)",
        fontSize: 12,
        color: "var(--gray-12, #212529)",
      }}
    >
      {data.trigger ? null : <Handle type="target" position={Position.Left} />}
      <div style={{ display: "flex", alignItems: "center", gap: 8 }}>
        <img src={data.icon} alt="" width={24} height={24} style={{ flex: "none" }} />
        <div style={{ minWidth: 0 }}>
          <div style={{ fontWeight: 600, overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
            {data.title}
          </div>
          <div style={{ color: "#868e96", overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
            {data.subtitle}
          </div>
        </div>
      </div>
      {problems.length ? (
        <div data-testid={`node-problem-${id}`} style={{ color: "#e03131", marginTop: 6 }}>
          {problems[0]}
          {problems.length > 1 ? ` (+${problems.length - 1})` : ""}
        </div>
      ) : null}
      {run ? (
        <div
          data-testid={`node-run-${id}`}
          style={{ marginTop: 6, color: STATUS_COLORS[run.status] || "#495057", fontWeight: 500 }}
        >
          {run.label}
        </div>
      ) : null}
      <Handle type="source" position={Position.Right} />
    </div>
  );
});

const NODE_TYPES = { hub: HubNode };

function PaletteItem({ item, onAdd, disabled }) {
  const onDragStart = (event) => {
    event.dataTransfer.setData(DRAG_TYPE, JSON.stringify({ component: item.component, function: item.function }));
    event.dataTransfer.effectAllowed = "move";
  };
  return (
    <div
      draggable={!disabled}
      onDragStart={onDragStart}
      onDoubleClick={() => !disabled && onAdd(item)}
      data-testid={`palette-${item.component}-${item.function}`}
      title={item.description || item.title}
      style={{
        display: "flex",
        alignItems: "center",
        gap: 8,
        padding: "6px 8px",
        borderRadius: 6,
        cursor: disabled ? "default" : "grab",
        border: "1px solid var(--gray-5, #dee2e6)",
        background: "var(--color-panel-solid, #fff)",
        fontSize: 12,
      }}
    >
      <img src={item.icon} alt="" width={20} height={20} />
      <div style={{ minWidth: 0 }}>
        <div style={{ fontWeight: 500, overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
          {item.title}
        </div>
        {item.subtitle ? (
          <div style={{ color: "#868e96", overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
            {item.subtitle}
          </div>
        ) : null}
      </div>
    </div>
  );
}

const Palette = memo(function Palette({ items, onAdd, disabled }) {
  const [search, setSearch] = useState("");
  const groups = useMemo(() => {
    const needle = search.trim().toLowerCase();
    const found = (items || []).filter(
      (item) => !needle || `${item.title} ${item.subtitle} ${item.group}`.toLowerCase().includes(needle),
    );
    const byGroup = new Map();
    for (const item of found) {
      if (!byGroup.has(item.group)) byGroup.set(item.group, []);
      byGroup.get(item.group).push(item);
    }
    return [...byGroup.entries()];
  }, [items, search]);
  return (
    <div
      data-testid="palette"
      style={{
        width: 220,
        flex: "none",
        display: "flex",
        flexDirection: "column",
        gap: 8,
        padding: 8,
        borderRight: "1px solid var(--gray-5, #dee2e6)",
        overflowY: "auto",
      }}
    >
      <input
        placeholder="Search components"
        value={search}
        onChange={(event) => setSearch(event.target.value)}
        data-testid="palette-search"
        style={{ padding: "6px 8px", border: "1px solid var(--gray-7, #adb5bd)", borderRadius: 6, fontSize: 13 }}
      />
      {groups.length === 0 ? <div style={{ color: "#868e96", fontSize: 12 }}>Nothing matches.</div> : null}
      {groups.map(([group, groupItems]) => (
        <div key={group} style={{ display: "flex", flexDirection: "column", gap: 4 }}>
          <div style={{ fontSize: 11, fontWeight: 600, color: "#868e96", textTransform: "uppercase" }}>{group}</div>
          {groupItems.map((item) => (
            <PaletteItem key={`${item.component}/${item.function}`} item={item} onAdd={onAdd} disabled={disabled} />
          ))}
        </div>
      ))}
    </div>
  );
});

function editingText(target) {
  const tag = (target && target.tagName) || "";
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
}

function mergeNodes(incoming, current, dragging) {
  // Selection is the browser's; so is the position of a node the user is dragging right now.
  const local = new Map(current.map((node) => [node.id, node]));
  return (incoming || []).map((node) => {
    const mine = local.get(node.id);
    if (!mine) return node;
    const merged = { ...node, selected: mine.selected, measured: mine.measured };
    if (dragging.has(node.id)) merged.position = mine.position;
    return merged;
  });
}

function Canvas(props) {
  const {
    nodes: serverNodes,
    edges: serverEdges,
    palette,
    readOnly,
    dirty,
    fitSignal,
    selectedId,
    onNodesMoved,
    onConnectNodes,
    onDeleteItems,
    onSelectItem,
    onAddComponent,
    onCopyNodes,
    onPasteNodes,
    onUndo,
    onRedo,
    onLayout,
  } = props;
  const [nodes, setNodes, onNodesChange] = useNodesState(serverNodes || []);
  const [edges, setEdges, onEdgesChange] = useEdgesState(serverEdges || []);
  const dragging = useRef(new Set());
  // Fit a saved flow once it is drawn; never refit a new flow when its first step lands (the view would jump
  // under the cursor of someone about to drop the next one).
  const fitOnLoad = useRef((serverNodes || []).length > 0);
  const wrapper = useRef(null);
  const flow = useReactFlow();

  useEffect(() => {
    setNodes((current) => mergeNodes(serverNodes, current, dragging.current));
  }, [serverNodes, setNodes]);
  useEffect(() => {
    setEdges((current) => {
      const selected = new Set(current.filter((edge) => edge.selected).map((edge) => edge.id));
      return (serverEdges || []).map((edge) => (selected.has(edge.id) ? { ...edge, selected: true } : edge));
    });
  }, [serverEdges, setEdges]);
  useEffect(() => {
    // Closing or reloading the tab with unsaved changes asks first (the draft lives on the server until saved).
    if (!dirty) return undefined;
    const warn = (event) => {
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  useEffect(() => {
    // The server chose a step (a new one dropped, a problem clicked): select it here too, so that Delete and
    // Ctrl+C act on the step the panel shows. A step already selected here (a shift-click) keeps the rest.
    if (!selectedId) return;
    setNodes((current) => {
      const chosen = current.find((node) => node.id === selectedId);
      if (!chosen || chosen.selected) return current;
      return current.map((node) => (node.selected === (node.id === selectedId) ? node : { ...node, selected: node.id === selectedId }));
    });
  }, [selectedId, setNodes]);

  const lastFit = useRef(fitSignal);
  useEffect(() => {
    // Only when the server asks again (a layout, another version shown): not whenever React Flow re-renders.
    if (fitSignal === lastFit.current) return;
    lastFit.current = fitSignal;
    window.requestAnimationFrame(() => flow.fitView({ ...FIT_OPTIONS, duration: 200 }));
  }, [fitSignal, flow]);

  const center = useCallback(() => {
    const box = wrapper.current ? wrapper.current.getBoundingClientRect() : { left: 0, top: 0, width: 0, height: 0 };
    return flow.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 3 });
  }, [flow]);

  const add = useCallback(
    (item, position) => {
      const at = position || center();
      onAddComponent &&
        onAddComponent({ component: item.component, function: item.function, x: Math.round(at.x), y: Math.round(at.y) });
    },
    [onAddComponent, center],
  );

  const addAtCentre = useCallback((item) => add(item), [add]);

  const onDrop = useCallback(
    (event) => {
      event.preventDefault();
      const raw = event.dataTransfer.getData(DRAG_TYPE);
      if (!raw || readOnly) return;
      add(JSON.parse(raw), flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [add, flow, readOnly],
  );
  const onDragOver = useCallback((event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
  }, []);

  const onNodeDragStart = useCallback((_event, _node, dragged) => {
    for (const node of dragged) dragging.current.add(node.id);
  }, []);
  const onNodeDragStop = useCallback(
    (_event, _node, dragged) => {
      for (const node of dragged) dragging.current.delete(node.id);
      onNodesMoved &&
        onNodesMoved(dragged.map((node) => ({ id: node.id, x: Math.round(node.position.x), y: Math.round(node.position.y) })));
    },
    [onNodesMoved],
  );
  const onConnect = useCallback(
    (connection) => onConnectNodes && onConnectNodes({ source: connection.source, target: connection.target }),
    [onConnectNodes],
  );
  const onDelete = useCallback(
    ({ nodes: gone, edges: goneEdges }) =>
      onDeleteItems &&
      onDeleteItems({
        nodes: gone.map((node) => node.id),
        edges: goneEdges.map((edge) => ({ source: edge.source, target: edge.target })),
      }),
    [onDeleteItems],
  );
  const deleteSelected = useCallback(() => {
    const gone = nodes.filter((node) => node.selected).map((node) => node.id);
    const goneEdges = edges
      .filter((edge) => edge.selected || gone.includes(edge.source) || gone.includes(edge.target))
      .map((edge) => ({ source: edge.source, target: edge.target }));
    if ((gone.length || goneEdges.length) && onDeleteItems) onDeleteItems({ nodes: gone, edges: goneEdges });
  }, [nodes, edges, onDeleteItems]);

  const onKeyDown = useCallback(
    (event) => {
      if (editingText(event.target)) return;
      const mod = event.ctrlKey || event.metaKey;
      if (!mod) return;
      const key = event.key.toLowerCase();
      if (readOnly && key !== "c") return; // copying out of a saved version is fine; changing it is not
      if (key === "c") {
        const ids = nodes.filter((node) => node.selected).map((node) => node.id);
        if (ids.length && onCopyNodes) onCopyNodes(ids);
      } else if (key === "v") {
        const at = center();
        onPasteNodes && onPasteNodes({ x: Math.round(at.x), y: Math.round(at.y) });
      } else if (key === "z" && !event.shiftKey) {
        onUndo && onUndo();
      } else if (key === "y" || (key === "z" && event.shiftKey)) {
        onRedo && onRedo();
      } else {
        return;
      }
      event.preventDefault();
    },
    [nodes, readOnly, onCopyNodes, onPasteNodes, onUndo, onRedo, center],
  );

  const button = (label, testId, onClick, disabled) => (
    <button
      type="button"
      data-testid={testId}
      onClick={onClick}
      disabled={disabled}
      style={{
        padding: "4px 10px",
        borderRadius: 6,
        border: "1px solid var(--gray-6, #ced4da)",
        background: "var(--color-panel-solid, #fff)",
        fontSize: 12,
        cursor: disabled ? "default" : "pointer",
      }}
    >
      {label}
    </button>
  );

  return (
    <div style={{ display: "flex", width: "100%", height: "100%" }}>
      <Palette items={palette} onAdd={addAtCentre} disabled={readOnly} />
      <div
        ref={wrapper}
        tabIndex={0}
        onKeyDown={onKeyDown}
        data-testid="canvas"
        style={{ flex: 1, height: "100%", outline: "none" }}
      >
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onNodeDragStart={onNodeDragStart}
          onNodeDragStop={onNodeDragStop}
          onConnect={onConnect}
          onDelete={onDelete}
          onNodeClick={(_event, node) => onSelectItem && onSelectItem({ node: node.id })}
          onEdgeClick={(_event, edge) => onSelectItem && onSelectItem({ source: edge.source, target: edge.target })}
          onPaneClick={() => onSelectItem && onSelectItem({})}
          onDrop={onDrop}
          onDragOver={onDragOver}
          nodesDraggable={!readOnly}
          nodesConnectable={!readOnly}
          deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
          onlyRenderVisibleElements
          fitView={fitOnLoad.current}
          fitViewOptions={FIT_OPTIONS}
          minZoom={0.1}
        >
          <Background gap={16} />
          <Controls showInteractive={false} />
          <MiniMap pannable zoomable />
          <Panel position="top-right">
            <div style={{ display: "flex", gap: 4 }}>
              {button("Undo", "canvas-undo", () => onUndo && onUndo(), readOnly)}
              {button("Redo", "canvas-redo", () => onRedo && onRedo(), readOnly)}
              {button("Delete", "canvas-delete", deleteSelected, readOnly)}
              {button("Auto-layout", "canvas-layout", () => onLayout && onLayout(), readOnly)}
              {button("Fit view", "canvas-fit", () => flow.fitView({ ...FIT_OPTIONS, duration: 200 }), false)}
            </div>
          </Panel>
        </ReactFlow>
      </div>
    </div>
  );
}

export function FlowDesigner(props) {
  return (
    <ReactFlowProvider>
      <Canvas {...props} />
    </ReactFlowProvider>
  );
}
